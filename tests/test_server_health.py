"""Giving a server up (shared by the generation and judge stages) and the failure tally, by hand."""

from vlmpipe.core.server_health import GIVE_UP_AFTER, FailureTally, ServerHealth


def test_given_up_after_connection_failures_in_a_row_only_while_nothing_succeeded() -> None:
    dead = ServerHealth("the server of m at http://127.0.0.1:9/v1")
    results = [dead.record("connection", f"refused {i}") for i in range(GIVE_UP_AFTER + 1)]
    assert results == [False] * (GIVE_UP_AFTER - 1) + [True, False]  # True once, when it is given up
    assert dead.given_up == ("the server of m at http://127.0.0.1:9/v1 failed 5 requests in a row and none "
                             "succeeded (last: refused 4)")
    interrupted = ServerHealth("s")  # another kind of failure breaks the row
    for kind in ["connection"] * 4 + ["timeout"] + ["connection"] * 4:
        assert not interrupted.record(kind)
    answered = ServerHealth("s")  # a server that answered once is never given up
    answered.record(None)
    assert not any(answered.record("connection") for _ in range(3 * GIVE_UP_AFTER)) and answered.given_up is None


def test_failure_tally_counts_by_kind_and_keeps_the_first_message() -> None:
    tally = FailureTally()
    assert not tally
    for kind, msg in [("http_503", "a: HTTP 503"), ("timeout", "b: timed out"), ("http_503", "c: HTTP 503"),
                      (None, "d: ?")]:
        tally.add(kind, msg)
    assert tally and tally.describe() == "(http_503: 2, timeout: 1, error: 1); first: a: HTTP 503"
