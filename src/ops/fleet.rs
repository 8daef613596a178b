//! `GET /fleet/attention` (SPEC §10): what needs a person, by bucket, each
//! task with `attention_reason` and `since`, scoped like reads.

use serde_json::{json, Map, Value};

use super::Context;
use crate::domain::access::Caller;
use crate::domain::clock;
use crate::error::Result;
use crate::store::attention::{self, BUCKETS};
use crate::store::tasks::render;

/// `{count, buckets: {abandoned_claims: [task…], …}}`.
pub async fn attention(ctx: &Context, caller: &Caller) -> Result<Value> {
    let cache = ctx.store.cache().clone();
    let caller = caller.clone();
    ctx.store
        .read(move |conn| {
            let generation = cache.generation();
            let now = clock::now_string();
            let today = clock::format_date(clock::today());
            let flags = attention::flags(conn, &caller, &now, &today)?;
            let ids: Vec<i64> = flags.iter().map(|f| f.task_id).collect();
            let rendered = render::render_ids(conn, &cache, generation, &ids)?;
            let mut buckets: Map<String, Value> =
                BUCKETS.iter().map(|b| (b.to_string(), json!([]))).collect();
            for (flag, task) in flags.iter().zip(rendered) {
                let mut task: Value = serde_json::from_str(task.json())?;
                if let Value::Object(map) = &mut task {
                    map.insert("attention_reason".into(), json!(flag.reason));
                    map.insert("since".into(), json!(flag.since));
                }
                if let Some(Value::Array(list)) = buckets.get_mut(flag.bucket) {
                    list.push(task);
                }
            }
            Ok(json!({ "count": flags.len(), "buckets": buckets }))
        })
        .await
}
