"""Email: per-organisation templates, rendered in the transaction that causes a message and
sent by a durable job (``mail.send``) through a small ``MailSender`` port."""
