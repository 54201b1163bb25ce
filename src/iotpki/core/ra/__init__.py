"""Registration authority: registrations, enrollment methods, endpoints, approvals, key delivery
and the state enrollment protocols keep between messages."""
