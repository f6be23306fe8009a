"""HTML reports of grades: a self-contained page per student and a class summary."""

from grader.report.render import ReportContext, student_page, write_reports

__all__ = ["ReportContext", "student_page", "write_reports"]
