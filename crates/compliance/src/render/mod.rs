//! Writers of an assessment: HTML for people, CSV for spreadsheets, OSCAL for tools.
