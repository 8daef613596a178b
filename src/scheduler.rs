//! Background upkeep on a timer: checkpoints the write-ahead log, frees
//! claims whose lease ran out, spawns the recurrences that fell due. Its
//! work goes through the operations layer like any request's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::ops::{self, Context};

const TICK: Duration = Duration::from_millis(250);
/// Ticks between lease sweeps and recurrence spawns.
const SWEEP_EVERY: u32 = 4;

pub struct Scheduler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Scheduler {
    pub fn start(ctx: Context) -> anyhow::Result<Scheduler> {
        let checkpointer = ctx.store.checkpointer()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("delega-scheduler".into())
            .spawn(move || {
                // Recurrences missed while the server was down: one
                // instance each, at once.
                if let Err(e) = ops::recurrences::spawn_due(&ctx) {
                    log::warn!("recurrences could not spawn: {e}");
                }
                let mut tick = 0u32;
                while !flag.load(Ordering::SeqCst) {
                    thread::sleep(TICK);
                    tick = tick.wrapping_add(1);
                    if let Err(e) = checkpointer.run() {
                        log::warn!("checkpoint failed: {e}");
                    }
                    if tick.is_multiple_of(SWEEP_EVERY) {
                        if let Err(e) = ops::claims::expire(&ctx) {
                            log::warn!("lease sweep failed: {e}");
                        }
                        if let Err(e) = ops::recurrences::spawn_due(&ctx) {
                            log::warn!("recurrences could not spawn: {e}");
                        }
                    }
                }
            })?;
        Ok(Scheduler { stop, thread })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}
