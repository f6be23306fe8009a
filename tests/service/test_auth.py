"""Personal links: stored hashed, issued once per student, rotated on demand, and wrong ones sign nobody in."""

from __future__ import annotations

from sqlalchemy import select

from grader.service.auth import enrol, identify, issue_staff_token, issue_tokens, sign_in_link, token_digest
from grader.service.db import Student, Token, open_database

BASE = "https://grader.example.edu"


def test_links_are_issued_once_stored_hashed_and_rotated(database: str) -> None:
    db = open_database(database)
    enrol(db, {s: Student(id=s, name=s.title(), email="") for s in ("ada", "bob")})
    first = issue_tokens(db, ["ada", "bob"], BASE, rotate=False)
    assert [link.student for link in first] == ["ada", "bob"]
    assert first[0].link == f"{BASE}/login#{first[0].token}"
    assert len(first[0].token) >= 43  # 32 random bytes
    with db() as s:
        stored = set(s.scalars(select(Token.digest)))
    assert stored == {token_digest(link.token) for link in first}  # the digests, never the tokens
    assert issue_tokens(db, ["ada", "bob"], BASE, rotate=False) == []  # everyone has one already
    enrol(db, {"cy": Student(id="cy", name="Cy", email="")})
    assert [link.student for link in issue_tokens(db, ["ada", "bob", "cy"], BASE, rotate=False)] == ["cy"]

    rotated = issue_tokens(db, ["ada", "bob"], BASE, rotate=True)
    assert identify(db, first[0].token) is None  # the old link stopped working
    ada = identify(db, rotated[0].token)
    assert ada is not None and (ada.student, ada.staff) == ("ada", False)


def test_staff_links_and_wrong_tokens(database: str) -> None:
    db = open_database(database)
    first = issue_staff_token(db, BASE, rotate=False)
    staff = identify(db, first.token)
    assert staff is not None and staff.staff and staff.student is None
    second = issue_staff_token(db, BASE, rotate=True)
    assert identify(db, first.token) is None and identify(db, second.token) is not None
    for wrong in (None, "", second.token[:-1], second.token + "x", "\x00", token_digest(second.token)):
        assert identify(db, wrong) is None
    assert sign_in_link(BASE + "/", "t") == f"{BASE}/login#t"
