package inbox

import (
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// watcher turns fsnotify events on the inbox into the names of files that
// may be complete deliveries.
type watcher struct {
	fw    *fsnotify.Watcher
	names chan string
	errs  chan error
	done  chan struct{}
}

func newWatcher(dir string) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, err
	}
	w := &watcher{fw: fw, names: make(chan string, 64), errs: make(chan error, 1), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

func (w *watcher) loop() {
	defer close(w.names)
	defer close(w.errs)
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			// Writers rename into place, which shows as Create on the new
			// name; Write covers writers that do not.
			if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
				continue
			}
			name := filepath.Base(ev.Name)
			if !eligible(name) {
				continue
			}
			select {
			case w.names <- name:
			case <-w.done:
				return
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			select {
			case w.errs <- err:
			default: // a rescan is already due
			}
		case <-w.done:
			return
		}
	}
}

func (w *watcher) Close() error {
	close(w.done)
	return w.fw.Close()
}
