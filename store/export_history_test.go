package store

import (
	"context"
	"fmt"
	"reflect"

	"github.com/personad/personad/engine"
)

// CheckHistoryCache compares every inquiry log the writer's parsed-history
// cache holds with the log as the file holds it, parsed afresh, and
// returns how many logs it compared and how many re-folds read and parsed
// a log so far.
func CheckHistoryCache(db *DB) (cached int, misses int64, err error) {
	err = db.writer.do(context.Background(), func(t *tx) error {
		for id, events := range t.cache.hist {
			recs, err := t.InquiryEvents(id)
			if err != nil {
				return err
			}
			fresh, err := engine.ParseRecords(recs)
			if err != nil {
				return err
			}
			if len(fresh) != len(events) {
				return fmt.Errorf("inquiry %s: %d events cached, %d stored", id, len(events), len(fresh))
			}
			for i := range fresh {
				if !reflect.DeepEqual(fresh[i], events[i]) {
					return fmt.Errorf("inquiry %s, event %d:\ncached %+v\nstored %+v", id, i, *events[i], *fresh[i])
				}
			}
			cached++
		}
		if n := countEvents(t.cache.hist); n != t.cache.histEvents {
			return fmt.Errorf("the cache counts %d events and holds %d", t.cache.histEvents, n)
		}
		misses = t.cache.histMisses
		return nil
	})
	return cached, misses, err
}

func countEvents(hist map[string][]*engine.Event) (n int) {
	for _, events := range hist {
		n += len(events)
	}
	return n
}
