"""delivery: takes one recipient's message off the bus, finds where it goes (relay or
MX), hands it over SMTP, classifies the answer, retries soft bounces, and reports the
outcome as events."""
