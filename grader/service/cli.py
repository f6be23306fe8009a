"""The `grade serve` command (and `grade serve tokens`): parses arguments, starts the service, prints links."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

from grader.errors import GraderError
from grader.facts_cache import default_cache_dir
from grader.pipeline import Options
from grader.rubric.load import load_rubric
from grader.rubric_choice import choose_rubric
from grader.service.auth import Link, enrol, issue_staff_token, issue_tokens
from grader.service.db import database_url, open_database
from grader.service.roster import read_service_roster

DEFAULT_PORT = 8000
log = logging.getLogger("grader.service")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="the service's folder: database, uploads, reports")
    p.add_argument(
        "--database",
        metavar="URL",
        help="PostgreSQL's URL, postgresql://USER:PASSWORD@HOST:PORT/DATABASE (default: SQLite in --data)",
    )


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grade serve", description="Run the grading service of a course on this machine.")
    p.add_argument(
        "--roster", type=Path, required=True, help="roster.csv with a `student` column (`name`, `email` kept)"
    )
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, behind a proxy)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument("--base-url", help="the address students use, e.g. https://grader.example.edu (sets secure cookies)")
    p.add_argument("--rubric", type=Path, help="rubric file (default: ./rubric.yaml if there is one, else the bundled)")
    p.add_argument("--dataset", type=Path, help="the homework's data in Keras's mnist.npz layout (default: rubric's)")
    p.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default: 1)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit per notebook (default: rubric)")
    p.add_argument("--cell-timeout", type=float, metavar="SECONDS", help="time limit per cell (default: rubric)")
    p.add_argument("--cache", type=Path, help=f"facts cache folder (default: {default_cache_dir()})")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--no-sandbox", action="store_true", help="run student code with your own rights (unsafe)")
    p.add_argument("--max-upload-mb", type=int, default=20, help="largest notebook accepted, in MB (default: 20)")
    p.add_argument("--queue-size", type=int, default=500, help="submissions waiting at most (default: 500)")
    p.add_argument("--shutdown-grace", type=float, default=30, help="seconds a stop waits for running grades")
    return p


def tokens_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade serve tokens", description="Print personal links as CSV (student,token,link) for a mail merge."
    )
    p.add_argument("--roster", type=Path, help="roster.csv with a `student` column (not needed with --staff)")
    _common(p)
    p.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the address students use")
    p.add_argument("--rotate", action="store_true", help="new links for everyone; the old ones stop working")
    p.add_argument("--staff", action="store_true", help="a staff link instead (class summary, exports, re-score)")
    return p


def print_links(links: list[Link]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["student", "token", "link"])
    writer.writerows([link.student, link.token, link.link] for link in links)


def tokens(argv: list[str]) -> int:
    args = tokens_parser().parse_args(argv)
    if not args.staff and args.roster is None:
        tokens_parser().error("--roster is needed (or --staff for a staff link)")
    db = open_database(database_url(args.database, _data(args.data)))
    if args.staff:
        print_links([issue_staff_token(db, args.base_url, args.rotate)])
        return 0
    roster = read_service_roster(args.roster)
    enrol(db, roster)
    links = issue_tokens(db, list(roster), args.base_url, args.rotate)
    print_links(links)
    if not links:
        print("Every student has a link already; --rotate makes new ones (the old stop working).", file=sys.stderr)
    return 0


def _data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # the uploads, reports and database are the students' and no one else's
    return folder


def serve(argv: list[str]) -> int:
    import uvicorn

    from grader.service.app import create_app, secret_key
    from grader.service.course import Course
    from grader.service.data_folder import DataFolder
    from grader.service.queue import Queue
    from grader.service.worker import Grader, Workers

    args = serve_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    data = _data(args.data.resolve())
    folder = DataFolder(data)
    rubric_path = choose_rubric(args.rubric).path
    rubric = load_rubric(rubric_path)
    if args.jobs < 1:
        raise GraderError("--jobs must be at least 1")
    db = open_database(database_url(args.database, data))
    enrol(db, read_service_roster(args.roster))
    queue = Queue(db, args.queue_size, rubric.service.submissions_per_hour, rubric.due, rubric.late.grace_minutes)
    resumed = queue.resume()
    if resumed:
        log.info("%d submission(s) interrupted by the last stop are queued again", resumed)
    options = Options(
        submissions=folder.uploads,
        out=folder.class_outputs.root,
        rubric=rubric_path,
        dataset=args.dataset,
        jobs=args.jobs,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        sandbox=not args.no_sandbox,
        scheduler=args.scheduler,
        quiet=True,
    )
    log.info("calibrating on the reference solution (from the facts cache after the first start)")
    grader = Grader.start(options, args.cache or default_cache_dir(), folder)
    workers = Workers(queue, grader, args.jobs)
    course = Course(grader.session.rubric, db, queue, folder, args.max_upload_mb * 2**20)
    https = bool(args.base_url and args.base_url.startswith("https://"))
    app = create_app(course, workers, secret_key(data), https, args.shutdown_grace)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,  # ours logs paths without query strings (grader.service.app.AccessLog)
        log_level="info",
        proxy_headers=True,
        timeout_graceful_shutdown=int(args.shutdown_grace),
    )
    uvicorn.Server(config).run()
    return 0


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["tokens"]:
            return tokens(argv[1:])
        return serve(argv)
    except GraderError as exc:
        print(f"grade serve: error: {exc}", file=sys.stderr)
        return 2
