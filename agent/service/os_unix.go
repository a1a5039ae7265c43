//go:build !windows

package service

const isWindows = false
