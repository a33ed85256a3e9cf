"""The fault kit: private, killable services and the farm as separate processes, for fault tests.

Every service here runs on free ports in a folder of its own and can be started,
stopped gracefully, killed with SIGKILL and restarted on the same data folder (so
what it keeps durably survives). Waits poll a condition until a deadline; none of
them is a bare sleep.

* ``process``: one managed OS process (its own session, log file, descendants), ``wait_until``;
* ``service``: what every service has (start, stop, kill, restart, url, readiness); ``ports``;
* ``rabbitmq``, ``redis_server``, ``postgres``: private RabbitMQ node, Redis and PostgreSQL cluster;
* ``farm``: the coordinator and one worker per stage, each its own process;
* ``jobs``: submit jobs, wait until each has ended (none lost, none stuck), check a video;
* ``rig``: private services with a stand-in farm on them, shared by a module's tests and healed before each;
* ``taps``: a copy of every task published to a stage, to publish one again.

The ``test_*`` modules other than ``test_kit`` are the fault tests (marker ``faults``): one test per fault.
"""
