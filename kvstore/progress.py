"""Progress of a long command (``kvstore copy``, ``diff``) on stderr, with its rate and ETA."""

from __future__ import annotations

import time

import click

__all__ = ["Progress"]


class Progress:
    """Progress on stderr: a redrawn line on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, verb: str, total: int | None, tty: bool) -> None:
        self.verb, self.total, self.tty = verb, total, tty
        self.start = self.last = time.monotonic()
        self.done = 0

    def line(self, done: int) -> str:
        """The figures after ``done`` records: count, rate, and the ETA when the total is known."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        text = f"{self.verb} {done:,}"
        if self.total is not None:
            text += f"/{self.total:,}"
        text += f" records, {rate:,.0f} records/s"
        if self.total is not None and rate > 0 and done < self.total:
            eta = int((self.total - done) / rate)
            text += f", ETA {eta // 60}:{eta % 60:02d}"
        return text

    def __call__(self, done: int) -> None:
        """``done`` records so far: redraw (a terminal, every 0.2 s) or print (every 5 s)."""
        self.done = done
        now = time.monotonic()
        if self.tty and now - self.last >= 0.2:
            click.echo("\r" + self.line(done).ljust(72), nl=False, err=True)
            self.last = now
        elif not self.tty and now - self.last >= 5:
            click.echo(self.line(done), err=True)
            self.last = now

    def finish(self) -> None:
        """Print the final figures (over the bar on a terminal)."""
        click.echo(
            ("\r" if self.tty else "") + self.line(self.done).ljust(72 if self.tty else 0), err=True
        )
