package devaddr

import "strings"

// Kind of a failure: what went wrong, as the CLI's exit code tells it apart.
const (
	KindInput      = "input"      // bad input (exit 2)
	KindInfeasible = "infeasible" // no topology satisfies the request (exit 1)
	KindCheck      = "check"      // Check found rules broken (exit 1)
	KindInternal   = "internal"   // devaddr failed on its own (a bug)
)

// Location is where a problem is, as far as known.
type Location struct {
	File    string `json:"file,omitempty"`
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Element string `json:"element,omitempty"`
}

// Finding is a rule a plan breaks.
type Finding struct {
	Rule    string         `json:"rule"`
	Subject map[string]any `json:"subject"`
	Message string         `json:"message"`
}

// Problem is one problem of a failed call: one entry of the CLI's `--error-format
// json` report.
type Problem struct {
	Kind        string    `json:"kind"`
	Code        string    `json:"code"`
	Location    Location  `json:"location"`
	Message     string    `json:"message"`
	Binding     string    `json:"binding,omitempty"`
	Requirement string    `json:"requirement,omitempty"`
	Fix         string    `json:"fix,omitempty"`
	Devices     []string  `json:"devices,omitempty"`
	Needed      *int      `json:"needed,omitempty"`
	Available   *int      `json:"available,omitempty"`
	Findings    []Finding `json:"findings,omitempty"`
}

// Error is a failed call: the first problem's fields, every problem (Problems; a spec
// with three unknown kinds has three), and the CLI's text (Text). Match on Kind and
// Code; use errors.As to get it from an error.
type Error struct {
	Problem
	Problems []Problem `json:"errors"`
	Text     string    `json:"-"`
}

func (e *Error) Error() string { return strings.TrimSpace(e.Text) }
