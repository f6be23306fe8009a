"""Who is asking: personal tokens (stored as SHA-256 digests, compared in constant time) and CSRF tokens.

A token is 32 random bytes. The database keeps only its digest, so a stolen backup signs nobody in. A wrong,
revoked and missing token take the same path (a digest, one indexed lookup, a constant-time comparison) and
get the same answer, so an answer tells nothing about which tokens exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from grader.service.db import Student, Token, now

STAFF = "staff"  # the `student` column of a staff link's CSV row


@dataclass(frozen=True, slots=True)
class Identity:
    student: str | None  # None for staff
    staff: bool


@dataclass(frozen=True, slots=True)
class Link:
    student: str
    token: str
    link: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def identify(db: sessionmaker[Any], token: str | None) -> Identity | None:
    """The owner of `token`, or None for a missing, wrong or revoked one (the same work for each)."""
    return identify_digest(db, token_digest(token or ""))


def identify_digest(db: sessionmaker[Any], digest: str) -> Identity | None:
    """The owner of the token whose digest a signed-in browser's session holds; None once it is revoked."""
    with db() as session:
        row = session.scalar(select(Token).where(Token.digest == digest, Token.revoked_at.is_(None)))
        stored = row.digest if row is not None else "0" * 64
        if not hmac.compare_digest(stored, digest) or row is None:
            return None
        return Identity(row.student, row.staff)


def sign_in_link(base_url: str, token: str) -> str:
    """The personal link: the token rides in the fragment, which browsers never send, so no server logs it."""
    return f"{base_url.rstrip('/')}/login#{token}"


def issue_tokens(db: sessionmaker[Any], students: list[str], base_url: str, rotate: bool) -> list[Link]:
    """New links for the students without one (all of them with `rotate`, whose old links stop working)."""
    links = []
    with db.begin() as session:
        if rotate:
            session.execute(
                update(Token).where(Token.student.in_(students), Token.revoked_at.is_(None)).values(revoked_at=now())
            )
        holders = set(session.scalars(select(Token.student).where(Token.revoked_at.is_(None))))
        for student in students:
            if student in holders:
                continue
            token = new_token()
            session.add(Token(digest=token_digest(token), student=student, staff=False, created_at=now()))
            links.append(Link(student, token, sign_in_link(base_url, token)))
    return links


def issue_staff_token(db: sessionmaker[Any], base_url: str, rotate: bool) -> Link:
    """A new staff link; with `rotate`, every earlier staff link stops working."""
    token = new_token()
    with db.begin() as session:
        if rotate:
            session.execute(update(Token).where(Token.staff, Token.revoked_at.is_(None)).values(revoked_at=now()))
        session.add(Token(digest=token_digest(token), student=None, staff=True, created_at=now()))
    return Link(STAFF, token, sign_in_link(base_url, token))


def enrol(db: sessionmaker[Any], roster: dict[str, Student]) -> None:
    """Adds the roster's students that the database lacks and updates the names and e-mails of the others."""
    with db.begin() as session:
        for student in roster.values():
            session.merge(Student(id=student.id, name=student.name, email=student.email))


def csrf_token(session: dict[str, Any]) -> str:
    """The CSRF token of this browser session, made on first use; every form carries it back."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_valid(session: dict[str, Any], given: object) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)
