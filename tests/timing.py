"""Timing constants shared by the server tests, each with the margin that justifies it."""

#: A client deadline that passes while a held or delayed handler runs, yet long enough for the
#: call to reach the handler first on a loaded machine. # margin: grpc's lateness was measured at
#: up to 41 ms with the CPUs oversubscribed; with 20 ms deadlines and 6 busy processes on 2 cores
#: a call sometimes expired before the server saw it. 250 ms is six times the measured lateness.
REACHES_SERVER = 0.25

#: How long to wait for a handler to enter a gate when the client's 20 ms deadline may have
#: passed before the server saw the call. # margin: idle, a call enters in under 1 ms.
ENTRY_BOUND = 2.0
