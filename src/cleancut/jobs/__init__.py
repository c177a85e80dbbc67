"""Durable background-removal jobs: data model, store, queue, events, runner and service.

No web imports here; the API layer only talks to :class:`cleancut.jobs.service.JobService`.
"""
