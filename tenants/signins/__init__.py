"""The sign-in log: every attempt to sign in to an organisation, successful or not."""
