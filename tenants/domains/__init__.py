"""Email domains an organisation has proven it controls (DNS TXT), and only those route."""
