"""What stands between the network and the application: the token, Host and Origin checks,
security headers, limits, and the uvicorn protocols that bound slow or hostile peers."""
