"""The console: web pages for staff, customer users, reviewers and admins over the five public APIs."""
