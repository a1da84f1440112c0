from tests.record import rec, scenario

__all__ = ["rec", "scenario"]
