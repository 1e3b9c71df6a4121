# what: measure_latencies with time.perf_counter_ns and a helper that times one call
# cell: measure-latencies-code
# fails: none
def _timed(call, *args):
    start = time.perf_counter_ns()
    call(*args)
    return (time.perf_counter_ns() - start) / 1e9


def measure_latencies(address, n):
    with ShortClient(address) as client:
        short = [_timed(client.request, b"short %d" % i) for i in range(n)]
    with LongClient(address) as client:
        long = [_timed(client.request, b"long %d" % i) for i in range(n)]
    return short, long
