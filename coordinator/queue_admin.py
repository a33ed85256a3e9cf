"""``talkfarm-admin queues`` and ``talkfarm-admin dlq``: the broker side of operating the farm.

    talkfarm-admin queues recreate [--force]   declare the stage queues again (after their arguments changed)
    talkfarm-admin dlq list                    the dead letters of every stage: task, job, reason
    talkfarm-admin dlq replay [--stage S] [--job ID]
                                               re-open each letter's job and put the letter back on its queue
    talkfarm-admin dlq purge [--stage S] [--job ID]
                                               drop dead letters (their jobs have failed already)
"""

from __future__ import annotations

import argparse
from typing import Any

from amqp.exceptions import NotFound

from contracts.settings import get_settings
from coordinator.store.repo import JobStore, make_engine
from pipeline.app import app, declare_queues, stage_queues
from pipeline.cancel import CancelFlags
from pipeline.deadletters import list_letters, take_letters
from pipeline.deliveries import DeliveryCounter
from pipeline.stages import STAGE_NAMES


def _recreate(args: argparse.Namespace) -> int:
    settings = get_settings()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3, timeout=settings.broker.connect_timeout)
        for queue in stage_queues(settings):
            channel = conn.channel()
            try:
                waiting = channel.queue_declare(queue.name, passive=True).message_count
            except NotFound:
                continue
            if waiting and not args.force:
                print(f"{queue.name} holds {waiting} messages: let the workers drain it, or pass --force to drop them")
                return 1
            channel.queue_delete(queue.name)
            print(f"deleted {queue.name} ({waiting} messages)")
    declare_queues(settings)
    print("declared the stage queues and the dead-letter queues")
    return 0


def _list(_: argparse.Namespace) -> int:
    letters = list_letters(get_settings())
    for letter in letters:
        print(f"{letter.stage:<10} {letter.task_id:<60} job {letter.job_id} ({letter.reason or 'rejected'})")
    print(f"{len(letters)} dead letters")
    return 0


def _take(args: argparse.Namespace, replay: bool) -> int:
    settings = get_settings()
    store = JobStore(make_engine(settings.db_url)) if replay else None
    flags, deliveries = CancelFlags.from_settings(settings), DeliveryCounter.from_settings(settings)
    total = 0
    for stage in args.stage or STAGE_NAMES:
        if replay and store is not None:
            # Re-open the jobs before their letters are back on the queue, so their events count.
            for letter in list_letters(settings, (stage,)):
                if args.job is None or letter.job_id == args.job:
                    store.reopen(letter.job_id)
                    flags.clear(letter.job_id)
                    deliveries.reset(letter.task_id)
        taken = take_letters(settings, stage, args.job, replay=replay)
        total += len(taken)
    print(f"{'replayed' if replay else 'purged'} {total} dead letters")
    return 0


def add_parsers(sub: Any) -> None:
    queues = sub.add_parser("queues", help="the stage queues").add_subparsers(dest="action", required=True)
    recreate = queues.add_parser("recreate", help="delete and declare the stage queues (they must be empty)")
    recreate.add_argument("--force", action="store_true", help="drop the messages they hold")
    recreate.set_defaults(func=_recreate)

    dlq = sub.add_parser("dlq", help="the dead-letter queues").add_subparsers(dest="action", required=True)
    dlq.add_parser("list", help="list the dead letters").set_defaults(func=_list)
    for name, replay, text in (("replay", True, "re-open the jobs and queue their letters again"),
                               ("purge", False, "drop the letters")):
        command = dlq.add_parser(name, help=text)
        command.add_argument("--stage", action="append", choices=STAGE_NAMES)
        command.add_argument("--job", help="only this job's letters")
        command.set_defaults(func=lambda args, replay=replay: _take(args, replay))
