"""Load test of the whole farm: Locust users against a farm of real processes, and the report of the run.

``run`` (the entry point: ``python -m bench.load.run``) starts the farm and Locust,
``scenario`` is the Locust users, ``queues`` samples the queue depths, ``report``
computes the figures and writes the CSV files, ``plots`` draws the PNGs.
"""
