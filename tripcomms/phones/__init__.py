"""The school phone pool: phones, bookings, loans, overdue loans and each phone's history."""
