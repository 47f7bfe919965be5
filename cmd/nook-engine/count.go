package main

import (
	"fmt"
	"strconv"
)

// parseCount reads a non-negative count such as --tail's.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid count %q: give a number of 0 or more, or all", s)
	}
	return n, nil
}
