"""The distributed backend: stateless API nodes and inference workers on existing engines.

- job records in PostgreSQL (``pgstore.PgJobStore``, the same ``JobStore`` Protocol as SQLite;
  schema under Alembic, ``migrate.py``);
- Celery carries the job id to a model-specific queue (``celery_app.py``); ``worker.py`` is the
  process ``cleancut worker`` runs (the model loaded once and kept warm);
- progress events cross processes on Redis pub/sub (``events.RedisEventBus``);
- blobs in S3-compatible storage (``cleancut.storage.s3``) or any shared folder;
- ``service.build_distributed_service`` wires an API node's ``JobService`` (no inference).

The job store stays the source of truth: a broker message is only a doorbell carrying a job
id. A delivery runs a job only after claiming it with a conditional UPDATE, so duplicate or
redelivered messages never run a job twice at once, and every run is fenced by its attempt
number, so a run that lost its claim can neither settle the job nor touch its results.
"""
