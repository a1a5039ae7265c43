//go:build !windows

package service

func checkServiceFiles(string, []string) ([]string, error) { return nil, nil }
