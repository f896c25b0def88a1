from datetime import timedelta

import pytest

from broker.pacing import Pacer
from tests.broker.helpers import T0


def test_no_second_holds_more_than_the_limit_and_messages_leave_evenly_spaced():
    pacer = Pacer(40)
    sent, now = [], T0
    while len(sent) < 130:  # a sender that always has something to say
        if pacer.take(now):
            sent.append(now)
        now = pacer.next_free(now) if not pacer.ready(now) else now
    assert all(b - a >= timedelta(seconds=1) for a, b in zip(sent, sent[40:]))
    assert all(b - a == timedelta(milliseconds=25) for a, b in zip(sent, sent[1:]))
    assert pacer.sent == 130 and sent[0] == T0


def test_a_refused_take_changes_nothing_and_a_quiet_pacer_does_not_wait():
    pacer = Pacer(2)
    assert pacer.free_at is None and pacer.next_free(T0) == T0
    assert pacer.take(T0)
    assert not pacer.take(T0 + timedelta(milliseconds=499)) and pacer.sent == 1
    assert pacer.next_free(T0) == T0 + timedelta(milliseconds=500) == pacer.free_at
    later = T0 + timedelta(seconds=5)
    assert pacer.ready(later) and pacer.next_free(later) == later and pacer.take(later)
    assert pacer.free_at == later + timedelta(milliseconds=500)


def test_an_odd_limit_rounds_the_gap_up():
    assert Pacer(22).gap == timedelta(microseconds=45455)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_limit_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError):
        Pacer(bad)
