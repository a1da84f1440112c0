"""Trips, pupils, parents and carers, and roster import."""
