package fakeccp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// The admin API's routes, on Server.AdminURL. Bodies are JSON; errors are
// {"error": "..."} with a 4xx status.
const (
	// AdminHealth answers 200 {"status":"ok"}.
	AdminHealth = "GET /healthz"
	// AdminSetPassword takes {"safe","folder","object","password"}
	// (folder "" is Root) and answers 204, or 404 for an unknown account.
	AdminSetPassword = "POST /accounts/password"
	// AdminSetChange takes {"safe","folder","object","inProgress"} and
	// answers 204.
	AdminSetChange = "POST /accounts/change"
	// AdminGetFaults answers the faults in force, latency as "250ms".
	AdminGetFaults = "GET /faults"
	// AdminSetFaults replaces the faults: {"latency":"250ms",
	// "latencyRate":0.5, "status":503, "statusRate":0.1, "errorCode":"",
	// "errorMsg":"", "resetRate":0.01, "vaultDown":false}; answers 204.
	AdminSetFaults = "PUT /faults"
	// AdminClearFaults removes every fault; answers 204.
	AdminClearFaults = "DELETE /faults"
	// AdminGetCounters answers Counters.
	AdminGetCounters = "GET /counters"
	// AdminResetCounters zeroes them; answers 204.
	AdminResetCounters = "DELETE /counters"
	// AdminGetAudit answers the audit records, oldest first; ?limit=N
	// keeps the N most recent.
	AdminGetAudit = "GET /audit"
	// AdminResetAudit forgets them; answers 204.
	AdminResetAudit = "DELETE /audit"
)

// AccountRef names an account in admin requests.
type AccountRef struct {
	Safe   string `json:"safe"`
	Folder string `json:"folder,omitempty"`
	Object string `json:"object"`
}

const maxAdminBodyBytes = 1 << 20

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(AdminHealth, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc(AdminSetPassword, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AccountRef
			Password *string `json:"password"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if body.Password == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "password is required"})
			return
		}
		if err := s.SetPassword(body.Safe, body.Folder, body.Object, *body.Password); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		s.log.Info().Str("safe", body.Safe).Str("object", body.Object).Msg("fakeccp: admin set password")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(AdminSetChange, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AccountRef
			InProgress bool `json:"inProgress"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if err := s.SetChangeInProgress(body.Safe, body.Folder, body.Object, body.InProgress); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(AdminGetFaults, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.CurrentFaults())
	})
	mux.HandleFunc(AdminSetFaults, func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if !readJSON(w, r, &f) {
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(AdminClearFaults, func(w http.ResponseWriter, r *http.Request) {
		s.SetFaults(Faults{})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(AdminGetCounters, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc(AdminResetCounters, func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc(AdminGetAudit, func(w http.ResponseWriter, r *http.Request) {
		recs := s.Audit()
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit must be a non-negative number"})
				return
			}
			if n < len(recs) {
				recs = recs[len(recs)-n:]
			}
		}
		if recs == nil {
			recs = []AuditRecord{}
		}
		writeJSON(w, http.StatusOK, recs)
	})
	mux.HandleFunc(AdminResetAudit, func(w http.ResponseWriter, r *http.Request) {
		s.ResetAudit()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if errors.Is(err, io.EOF) {
			msg = "empty body"
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + msg})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
