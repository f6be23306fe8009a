"""HTML reports of grades: a self-contained page per student and a class summary (`render`), and their charts."""
