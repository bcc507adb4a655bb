"""`make bench`: every benchmark with its defaults; each prints a table and writes JSON."""

from benchmarks import learning, scaling, throughput


def main() -> None:
    throughput.main([])
    scaling.main([])
    learning.main(["--preset", "cartpole"])
    learning.main(["--preset", "pong", "--seconds", "120", "--seeds", "1"])


if __name__ == "__main__":
    main()
