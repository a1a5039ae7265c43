package service

import (
	"strconv"
	"strings"
	"time"
)

// sd_notify(3) states this package sends.
const (
	notifyReady    = "READY=1"
	notifyStopping = "STOPPING=1"
)

// reloadingMessage is the notification sent before a reload:
// RELOADING=1 with the CLOCK_MONOTONIC time, which systemd 253 and later
// require for Type=notify-reload and older ones ignore.
func reloadingMessage(monotonic time.Duration) string {
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonic.Microseconds(), 10)
}

// statusMessage is a free-form STATUS= line for `systemctl status`. Newlines
// would start new assignments, so they are flattened.
func statusMessage(s string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
