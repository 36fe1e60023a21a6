"""Admission at the worker's door: the limit learnt from waits, and arrival times."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from shop import waits
from shop.server.admission import (
    DECREASE,
    INCREASE,
    INTERVAL,
    MIN_LIMIT,
    ONSET,
    ONSET_IN_FLIGHT,
    QUIET,
    SUSTAINED,
    Admission,
    Reason,
)
from shop.server.arrival import StampedSocket, stamp_arrivals
from shop.server.worker import ARRIVED, REFUSAL_BODY, refusal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(max_in_flight: int = 100, target: float = 0.002, max_wait: float = 1.5) -> Admission:
    return Admission(max_in_flight, target, max_wait, clock=Clock())


def interval(admission: Admission, count: int, waited: float = 0.0) -> list[str | None]:
    """``count`` requests that each waited ``waited``, all answered before the interval ends."""
    answers = [admission.admit(waited) for _ in range(count)]
    for answer in answers:
        if answer is None:
            admission.release()
    admission._clock.now += INTERVAL  # type: ignore[attr-defined]
    return answers


LATE = 0.002 * ONSET * 2  # a wait well past the onset of shedding


def shed(admission: Admission, in_use: int) -> None:
    """Start shedding: late intervals with ``in_use`` requests in flight, long enough."""
    for _ in range(SUSTAINED):
        interval(admission, in_use, waited=LATE)
    admission.admit(0.0)  # the interval closes on the next arrival
    admission.release()


class TestAdmission:
    def test_admits_up_to_the_in_flight_cap_then_refuses_for_it(self) -> None:
        admission = gate(max_in_flight=3)
        answers = [admission.admit(0.0) for _ in range(4)]
        assert answers == [None, None, None, Reason.IN_FLIGHT]
        admission.release()
        assert admission.admit(0.0) is None

    def test_a_loop_late_for_long_starts_shedding_at_a_share_of_what_was_in_use(self) -> None:
        admission = gate()
        shed(admission, in_use=40)
        assert admission.shedding
        assert admission.limit == pytest.approx(40 * DECREASE)

    def test_a_few_late_intervals_are_bursts_and_cut_nothing(self) -> None:
        admission = gate()
        for _ in range(SUSTAINED - 1):
            interval(admission, 40, waited=LATE)
        interval(admission, 40)
        for _ in range(SUSTAINED - 1):
            interval(admission, 40, waited=LATE)
        admission.admit(0.0)
        assert admission.limit == 100

    def test_a_late_loop_with_few_requests_in_flight_never_starts_shedding(self) -> None:
        admission = gate()
        for _ in range(3 * SUSTAINED):
            interval(admission, ONSET_IN_FLIGHT - 1, waited=LATE)
        assert not admission.shedding

    def test_a_wait_under_the_onset_never_starts_shedding(self) -> None:
        admission = gate()
        for _ in range(3 * SUSTAINED):
            interval(admission, 40, waited=0.002 * ONSET * 0.9)
        assert not admission.shedding

    def test_while_shedding_requests_past_the_limit_are_refused_for_the_event_loop(self) -> None:
        admission = gate()
        shed(admission, in_use=40)
        answers = [admission.admit(0.0) for _ in range(40)]
        assert answers.count(None) == 30
        assert set(answers[30:]) == {Reason.EVENT_LOOP}

    def test_while_shedding_one_interval_over_the_target_cuts_the_limit(self) -> None:
        admission = gate()
        shed(admission, in_use=40)
        interval(admission, 30, waited=0.003)  # over the 2 ms target, under the onset
        admission.admit(0.0)
        assert admission.limit == 30 * DECREASE

    def test_while_shedding_an_interval_on_time_that_refused_raises_the_limit_by_a_quarter(
        self,
    ) -> None:
        admission = gate()
        shed(admission, in_use=40)
        assert interval(admission, 31, waited=0.001)[-1] == Reason.EVENT_LOOP
        admission.admit(0.0)
        assert admission.limit == 30 * (1 + INCREASE)

    def test_while_shedding_a_quiet_interval_raises_the_limit_by_one(self) -> None:
        admission = gate()
        shed(admission, in_use=40)
        interval(admission, 5, waited=0.001)
        admission.admit(0.0)
        assert admission.limit == 31

    def test_quiet_intervals_bring_the_limit_back_to_the_cap_and_stop_shedding(self) -> None:
        admission = gate(max_in_flight=20)
        shed(admission, in_use=20)
        for _ in range(6):
            interval(admission, 1)
        admission.admit(0.0)
        assert admission.limit == 20 and not admission.shedding

    def test_a_second_without_a_refusal_stops_shedding(self) -> None:
        admission = gate()
        shed(admission, in_use=40)
        for _ in range(QUIET - 1):
            interval(admission, 5, waited=0.001)
        admission.admit(0.0)
        assert admission.shedding
        interval(admission, 5, waited=0.001)
        admission.admit(0.0)
        assert admission.limit == 100 and not admission.shedding

    def test_the_limit_never_drops_below_the_minimum(self) -> None:
        admission = gate()
        shed(admission, in_use=ONSET_IN_FLIGHT)
        for _ in range(10):
            interval(admission, 1, waited=1.0)
        admission.admit(0.0)
        assert admission.limit == MIN_LIMIT

    def test_a_request_that_waited_past_max_wait_is_refused_whatever_the_limit(self) -> None:
        admission = gate(max_wait=1.5)
        assert admission.admit(1.6) == Reason.EVENT_LOOP
        assert admission.in_flight == 0

    def test_a_parked_request_steps_out_of_the_count_while_it_waits(self) -> None:
        admission = gate(max_in_flight=1)
        assert admission.admit(0.0) is None
        with waits.parking(admission.parked), waits.parked():
            assert admission.admit(0.0) is None, "the parked one left room"
            assert admission.admit(0.0) == Reason.IN_FLIGHT
            admission.release()
        assert admission.in_flight == 1

    def test_parking_outside_a_server_is_no_wait_at_all(self) -> None:
        with waits.parked():
            pass

    def test_reports_each_new_limit(self) -> None:
        seen: list[float] = []
        admission = Admission(100, 0.002, 1.5, clock=Clock(), on_limit=seen.append)
        shed(admission, in_use=40)
        assert seen == [30]


class TestRefusal:
    def test_is_a_complete_json_503_with_retry_after(self) -> None:
        head, _, body = refusal(close=False, head=False).partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
        assert b"Retry-After: 1" in lines
        assert b"Content-Type: application/json" in lines
        assert f"Content-Length: {len(body)}".encode() in lines
        assert body == REFUSAL_BODY
        assert b"Connection: close" not in lines

    def test_says_close_when_the_client_asked_and_has_no_body_for_head(self) -> None:
        answer = refusal(close=True, head=True)
        assert answer.endswith(b"Connection: close\r\n\r\n")

    def test_the_app_reads_the_arrival_under_the_key_the_worker_writes(self) -> None:
        from observability.http import ARRIVED as READ

        assert READ == ARRIVED


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket with stamping on, once the kernel stamps (it may turn stamping on
    a moment after it is asked to)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        stamp_arrivals(server)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with socket.create_connection(server.getsockname()) as client:
                conn, _ = server.accept()
                with conn:
                    client.sendall(b"x")
                    _, ancillary, _, _ = conn.recvmsg(1, socket.CMSG_SPACE(16))
            if ancillary:
                break
            time.sleep(0.01)
        yield server


class TestStampedSocket:
    def test_the_arrival_is_when_the_kernel_got_the_bytes_not_when_they_were_read(
        self, listener: socket.socket
    ) -> None:
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        stamped = StampedSocket(conn)
        try:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            time.sleep(0.2)  # the bytes wait in the socket's buffer
            assert stamped.recv(1024) == b"GET / HTTP/1.1\r\n\r\n"
            assert stamped.arrived is not None
            assert time.monotonic() - stamped.arrived >= 0.19
        finally:
            client.close()
            conn.close()

    def test_bytes_that_arrived_before_the_connection_was_accepted_carry_their_stamp(
        self, listener: socket.socket
    ) -> None:
        client = socket.create_connection(listener.getsockname())
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        time.sleep(0.2)  # in the backlog, not yet accepted
        conn, _ = listener.accept()
        try:
            stamped = StampedSocket(conn)
            stamped.recv(1024)
            assert stamped.arrived is not None
            assert time.monotonic() - stamped.arrived >= 0.19
        finally:
            client.close()
            conn.close()

    def test_later_reads_keep_the_first_arrival_until_forgotten(self) -> None:
        left, right = socket.socketpair()
        stamped = StampedSocket(right)
        try:
            left.sendall(b"a")
            stamped.recv(1)
            first = stamped.arrived
            time.sleep(0.01)
            left.sendall(b"b")
            stamped.recv(1)
            assert stamped.arrived == first
            stamped.forget()
            left.sendall(b"c")
            stamped.recv(1)
            assert stamped.arrived is not None and first is not None
            assert stamped.arrived > first
        finally:
            left.close()
            right.close()

    def test_everything_else_is_the_wrapped_sockets(self) -> None:
        left, right = socket.socketpair()
        stamped = StampedSocket(right)
        try:
            assert stamped.fileno() == right.fileno()
            stamped.sendall(b"x")
            assert left.recv(1) == b"x"
        finally:
            left.close()
            right.close()
