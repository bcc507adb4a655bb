"""`make bench`: every benchmark with its defaults; each prints a table and writes JSON."""

from benchmarks import learning, queue_transfer, scaling, throughput, vector_env


def main() -> None:
    throughput.main([])
    queue_transfer.main([])
    vector_env.main([])
    scaling.main([])
    learning.main(["--preset", "cartpole"])
    learning.main(["--preset", "pong", "--seconds", "120", "--seeds", "1"])


if __name__ == "__main__":
    main()
