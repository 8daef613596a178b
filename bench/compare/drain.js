'use strict'
// One drain of one queue library against an empty database:
//   node drain.js <graphile-worker|pg-boss|pg-boss-work> <jobs> <workers>
// The connection string comes from DATABASE_URL. JOBS jobs are enqueued in
// bulk first (not timed); then WORKERS concurrent workers are started in this
// process and the clock runs from their start until every job is completed.
// Prints one result line on stdout; exits non-zero if any job was missed or
// handled twice.

const { performance } = require('node:perf_hooks')
const { EventEmitter } = require('node:events')
const pg = require('pg')

const [, , which, jobsArg, workersArg] = process.argv
const JOBS = parseInt(jobsArg, 10)
const WORKERS = parseInt(workersArg, 10)
const URL = process.env.DATABASE_URL
// How long an idle worker waits before looking again (graphile-worker's
// pollInterval, the empty-fetch pause of the pg-boss loops).
const POLL_MS = parseInt(process.env.POLL_MS || '10', 10)
// Give up (and fail) if the drain has not finished after this long.
const DRAIN_TIMEOUT_MS = 1000 * parseInt(process.env.DRAIN_TIMEOUT_S || '600', 10)
const CHUNK = 5000

if (!URL || !(JOBS > 0) || !(WORKERS > 0) ||
    !['graphile-worker', 'pg-boss', 'pg-boss-work'].includes(which)) {
  console.error('usage: DATABASE_URL=... node drain.js <graphile-worker|pg-boss|pg-boss-work> <jobs> <workers>')
  process.exit(2)
}

const version = name => require(`${name}/package.json`).version
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Exactly-once bookkeeping: how often each job id was handed to a handler,
// and which of the enqueued payload indexes 0..JOBS-1 were seen.
const seenIds = new Map()
const seenIdx = new Uint32Array(JOBS)
let handled = 0
function record (id, idx) {
  seenIds.set(id, (seenIds.get(id) || 0) + 1)
  if (Number.isInteger(idx) && idx >= 0 && idx < JOBS) seenIdx[idx]++
  handled++
}
function verdict () {
  let duplicates = 0
  for (const n of seenIds.values()) if (n > 1) duplicates += n - 1
  let missing = 0
  for (let i = 0; i < JOBS; i++) if (seenIdx[i] === 0) missing++
  return { duplicates, missing }
}

// Not timed: settle the freshly filled table the same way for both queues
// (statistics for the planner, dirty pages written out).
async function settle () {
  const c = new pg.Client({ connectionString: URL })
  await c.connect()
  await c.query('VACUUM ANALYZE')
  await c.query('CHECKPOINT')
  await c.end()
}

async function sqlOne (text, values) {
  const c = new pg.Client({ connectionString: URL })
  await c.connect()
  try {
    return (await c.query(text, values)).rows[0]
  } finally {
    await c.end()
  }
}

function deadline (what) {
  let timer
  const p = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not drained after ${DRAIN_TIMEOUT_MS / 1000} s (${handled}/${JOBS} handled)`)), DRAIN_TIMEOUT_MS)
  })
  p.cancel = () => clearTimeout(timer)
  return p
}

// ----------------------------------------------------------- graphile-worker

async function graphileWorker () {
  // The per-job "Completed task ..." info line would otherwise be built
  // (and dropped by our logger) for every job.
  process.env.NO_LOG_SUCCESS = '1'
  const { run, runMigrations, Logger } = require('graphile-worker')
  const logger = new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') console.error(`[graphile-worker ${level}] ${message}`)
  })

  await runMigrations({ connectionString: URL, logger })
  const c = new pg.Client({ connectionString: URL })
  await c.connect()
  for (let from = 0; from < JOBS; from += CHUNK) {
    const to = Math.min(JOBS, from + CHUNK) - 1
    await c.query(
      `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
         SELECT ROW('noop', json_build_object('i', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM generate_series($1::int, $2::int) AS i))`,
      [from, to])
  }
  const queued = Number((await c.query('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n)
  await c.end()
  if (queued !== JOBS) throw new Error(`graphile-worker: ${queued} jobs queued, expected ${JOBS}`)
  await settle()

  let completed = 0
  let failed = 0
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  const events = new EventEmitter()
  // Emitted after complete_job (or fail_job) has returned.
  events.on('job:complete', ({ error }) => {
    if (error) failed++
    else completed++
    if (completed + failed >= JOBS) resolveDone()
  })
  const taskList = {
    noop: async (payload, helpers) => { record(String(helpers.job.id), payload.i) }
  }

  const limit = deadline('graphile-worker')
  const t0 = performance.now()
  const runner = await run({
    connectionString: URL,
    concurrency: WORKERS,
    maxPoolSize: WORKERS + 4,
    pollInterval: POLL_MS,
    noHandleSignals: true,
    taskList,
    logger,
    events
  })
  try {
    await Promise.race([done, limit])
  } finally {
    limit.cancel()
  }
  const seconds = (performance.now() - t0) / 1000
  await runner.stop()

  const left = Number((await sqlOne('SELECT count(*) AS n FROM graphile_worker._private_jobs')).n)
  return { label: `graphile-worker ${version('graphile-worker')}`, seconds, failed, left }
}

// ------------------------------------------------------------------- pg-boss

async function pgBoss (useWork) {
  const PgBoss = require('pg-boss')
  const boss = new PgBoss({ connectionString: URL, max: WORKERS + 4 })
  boss.on('error', err => console.error(`[pg-boss error] ${err.message}`))
  await boss.start()
  const queue = 'bench'
  await boss.createQueue(queue)
  for (let from = 0; from < JOBS; from += CHUNK) {
    const batch = []
    for (let i = from; i < Math.min(JOBS, from + CHUNK); i++) batch.push({ name: queue, data: { i } })
    await boss.insert(batch)
  }
  const queued = (await boss.getQueueSize(queue))
  if (queued !== JOBS) throw new Error(`pg-boss: ${queued} jobs queued, expected ${JOBS}`)
  await settle()

  let completed = 0
  let notCompleted = 0
  let emptyFetches = 0
  const limit = deadline(useWork ? 'pg-boss work()' : 'pg-boss')
  const t0 = performance.now()
  try {
    if (!useWork) {
      // WORKERS concurrent fetch -> complete loops, one job per fetch.
      const loop = async () => {
        for (;;) {
          const jobs = await boss.fetch(queue, { batchSize: 1 })
          if (!jobs || jobs.length === 0) {
            emptyFetches++
            // Nothing claimable: every job is claimed, the others are
            // finishing theirs. Stop once all are completed.
            if (completed + notCompleted >= JOBS) return
            await sleep(POLL_MS)
            continue
          }
          const job = jobs[0]
          record(job.id, job.data && job.data.i)
          const res = await boss.complete(queue, job.id)
          if (res && res.affected === 1) completed++
          else notCompleted++
        }
      }
      const loops = []
      for (let w = 0; w < WORKERS; w++) loops.push(loop())
      await Promise.race([Promise.all(loops), limit])
    } else {
      // pg-boss's own worker API: WORKERS work() loops with batchSize 1.
      // work() completes a job without awaiting it, so the end is taken from
      // the table once every job has been handed out.
      let resolveHanded
      const handed = new Promise(resolve => { resolveHanded = resolve })
      for (let w = 0; w < WORKERS; w++) {
        await boss.work(queue, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
          record(job.id, job.data && job.data.i)
          if (handled >= JOBS) resolveHanded()
        })
      }
      await Promise.race([handed, limit])
      const poll = async () => {
        for (;;) {
          const n = Number((await sqlOne(`SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [queue])).n)
          if (n >= JOBS) { completed = n; return }
          await sleep(5)
        }
      }
      await Promise.race([poll(), limit])
    }
  } finally {
    limit.cancel()
  }
  const seconds = (performance.now() - t0) / 1000
  if (process.env.VERBOSE) console.error(`pg-boss: ${emptyFetches} empty fetches`)
  if (useWork) await boss.offWork(queue)
  await boss.stop({ graceful: true, wait: true, timeout: 5000 })

  const row = await sqlOne(
    `SELECT count(*) FILTER (WHERE state = 'completed') AS done, count(*) AS total FROM pgboss.job WHERE name = $1`, [queue])
  const left = Number(row.total) - Number(row.done)
  const label = `pg-boss ${version('pg-boss')}` + (useWork ? ' work() poll 0.5 s' : '')
  return { label, seconds, failed: notCompleted, left }
}

// ---------------------------------------------------------------------- main

async function main () {
  const r = which === 'graphile-worker'
    ? await graphileWorker()
    : await pgBoss(which === 'pg-boss-work')
  const { duplicates, missing } = verdict()
  const rate = JOBS / r.seconds
  let line = `${r.label}: ${JOBS} jobs, ${WORKERS} workers, ${r.seconds.toFixed(2)} s = ${Math.round(rate)} jobs/s, ${duplicates} duplicates`
  const problems = []
  if (missing) problems.push(`${missing} never handled`)
  if (r.failed) problems.push(`${r.failed} failed to complete`)
  if (r.left) problems.push(`${r.left} not completed in the table`)
  if (problems.length) line += `, ${problems.join(', ')}`
  console.log(line)
  return duplicates || problems.length ? 1 : 0
}

main().then(
  code => process.exit(code),
  err => { console.error(`${which}: ${err && err.stack ? err.stack : err}`); process.exit(1) }
)
