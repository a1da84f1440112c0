"""Safeguarding: outbound content rules, concerns for the safeguarding lead, retention."""
