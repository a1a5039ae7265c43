package rig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DropFile writes data to a dot file in dir, flushes it, and renames
// it to name, returning the moment of the rename: the delivery is "dropped"
// then, as when the portal (portal.Write) finishes.
func DropFile(dir, name string, data []byte) (time.Time, error) {
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return time.Time{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return time.Time{}, err
	}
	if err := f.Close(); err != nil {
		return time.Time{}, err
	}
	t := time.Now()
	return t, os.Rename(tmp, filepath.Join(dir, name))
}

// LoadAverage is the 1, 5 and 15 minute load average, or "?".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// CPUModel is the first CPU's model name, or "unknown".
func CPUModel() string {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

// ProcStatusKB reads a "Vm..." field of /proc/PID/status in kB.
func ProcStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New(field + " not found in /proc status")
}

// CPUTimes are the machine's CPU times from /proc/stat's first line, in
// clock ticks, summed over the CPUs.
type CPUTimes struct {
	Total, Steal uint64
}

// ReadCPUTimes reads /proc/stat.
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, err
	}
	return ParseCPUTimes(string(b))
}

// ParseCPUTimes reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest and guest_nice are within user and nice,
// so they are not added again).
func ParseCPUTimes(stat string) (CPUTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return CPUTimes{}, fmt.Errorf("/proc/stat: no cpu line with steal time: %q", line)
	}
	var t CPUTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t.Total += n
		if i == 7 {
			t.Steal = n
		}
	}
	return t, nil
}

// StealPercent is the share of the CPU time between a and b that the
// hypervisor gave to other guests: time this machine wanted to run and
// could not. -1 when there is no time between them.
func StealPercent(a, b CPUTimes) float64 {
	if b.Total <= a.Total {
		return -1
	}
	return 100 * float64(b.Steal-a.Steal) / float64(b.Total-a.Total)
}

// StealMeter starts measuring the CPU time the hypervisor steals from this
// machine. The function it returns gives the share stolen since, in
// percent (StealPercent), or -1 when /proc/stat could not be read or no
// time has passed.
func StealMeter() func() float64 {
	start, err := ReadCPUTimes()
	return func() float64 {
		end, err2 := ReadCPUTimes()
		if err != nil || err2 != nil {
			return -1
		}
		return StealPercent(start, end)
	}
}

// CPUIdle describes how the machine's idle CPUs wait, which sets what a
// wake-up costs: "" when sysfs does not say. Under the cpuidle haltpoll
// driver (a KVM guest) it adds the guest's halt polling, read from
// /sys/module/haltpoll.
func CPUIdle() string {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return DescribeCPUIdle(read("/sys/devices/system/cpu/cpuidle/current_driver"),
		read("/sys/module/haltpoll/parameters/guest_halt_poll_ns"))
}

// DescribeCPUIdle is CPUIdle's text for a cpuidle driver and, under
// haltpoll, the guest's halt-polling time in ns ("" when unknown).
func DescribeCPUIdle(driver, haltPollNS string) string {
	switch {
	case driver == "":
		return ""
	case driver != "haltpoll" || haltPollNS == "":
		return "cpuidle " + driver
	case haltPollNS == "0":
		return "cpuidle haltpoll with guest halt polling off: an idle vCPU halts at once, and waking it is a VM exit"
	default:
		return "cpuidle haltpoll, an idle vCPU polling " + haltPollNS + " ns before it halts"
	}
}
