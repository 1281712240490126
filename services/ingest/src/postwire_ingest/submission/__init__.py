"""SMTP submission (the Devino seed's SMTP API): ``server`` (sessions, AUTH, the checks of
MAIL, RCPT and DATA), ``message`` (a message kept as sent), ``parts`` (forbidden
attachments in every MIME part), ``throttle`` (AUTH guessing), ``tls`` (certificates)."""
