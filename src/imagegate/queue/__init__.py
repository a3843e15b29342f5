"""Job delivery chosen by URL: ``inprocess://`` (the embedded default) delivers job ids inside one process."""

from imagegate.queue.inprocess import InProcessJobEvents, InProcessQueue, open_queue

__all__ = ["InProcessJobEvents", "InProcessQueue", "open_queue"]
