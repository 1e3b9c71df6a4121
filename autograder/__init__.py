"""Grading for the sockets course: nbgrader underneath, with the course's own safety and speed."""
