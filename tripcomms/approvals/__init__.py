"""Personal-phone approvals: the Headteacher's permission to use one's own phone on a trip
(policy 50, 51), and its place in the relay."""
