"""Server-rendered pages: sign-in, the admin console (/console) and the account page (/account)."""
