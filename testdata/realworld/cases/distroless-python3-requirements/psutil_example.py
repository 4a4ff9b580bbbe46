#!/usr/bin/env python3
"""Prints this process's memory use as psutil (a compiled extension) sees it."""
import psutil


def main():
    info = psutil.Process().memory_info()
    mib = 1024 * 1024
    print(f"psutil {psutil.__version__}: RSS {info.rss / mib:.1f} MiB, VMS {info.vms / mib:.1f} MiB")


if __name__ == "__main__":
    main()
