"""attncli for teachers: exercises with hand-friendly numbers, one per student, and class
grading (ARCHITECTURE.md, issue 14)."""
