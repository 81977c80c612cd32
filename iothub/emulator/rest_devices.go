package emulator

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/hubwire/hubwire/iothub"
)

// maxListDevices is the most identities GET /devices returns.
const maxListDevices = 1000

func (s *restServer) routeDevices() {
	s.handle("GET /devices", RegistryRead, s.listDevices)
	s.handle("GET /devices/{$}", RegistryRead, s.listDevices)
	s.handle("POST /devices", RegistryWrite, s.bulkDevices)
	s.handle("POST /devices/{$}", RegistryWrite, s.bulkDevices)
	s.handle("GET /devices/{id}", RegistryRead, s.getDevice)
	s.handle("PUT /devices/{id}", RegistryWrite, s.putDevice)
	s.handle("DELETE /devices/{id}", RegistryWrite, s.deleteDevice)
	s.handle("GET /devices/{id}/modules", RegistryRead, s.listModules)
	s.handle("GET /devices/{id}/modules/{$}", RegistryRead, s.listModules)
	s.handle("GET /devices/{id}/modules/{mid}", RegistryRead, s.getModule)
	s.handle("PUT /devices/{id}/modules/{mid}", RegistryWrite, s.putModule)
	s.handle("DELETE /devices/{id}/modules/{mid}", RegistryWrite, s.deleteModule)
	s.handle("GET /statistics/devices", RegistryRead, s.statistics)
}

// pathID returns the path wildcard name, unescaped by the mux segment by
// segment, checked against IoT Hub's id rules.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !iothub.ValidID(id) {
		return "", badRequest("%s %q is not a valid id: at most 128 ASCII letters, digits and - : . + %% _ # * ? ! ( ) , = @ ; $ '", idWord(name), id)
	}
	return id, nil
}

func idWord(name string) string {
	if name == "mid" {
		return "module id"
	}
	return "device id"
}

// authBody is the authentication of a request body. Keys that are "", null
// or absent are generated; pointers tell null from absent, both of which
// mean "generate".
type authBody struct {
	Type         *AuthType `json:"type"`
	SymmetricKey *struct {
		PrimaryKey   *string `json:"primaryKey"`
		SecondaryKey *string `json:"secondaryKey"`
	} `json:"symmetricKey"`
	X509Thumbprint *struct {
		PrimaryThumbprint   *string `json:"primaryThumbprint"`
		SecondaryThumbprint *string `json:"secondaryThumbprint"`
	} `json:"x509Thumbprint"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (a *authBody) toAuth() Authentication {
	var out Authentication
	if a == nil {
		return out // sas with generated keys
	}
	if a.Type != nil {
		out.Type = *a.Type
	}
	if k := a.SymmetricKey; k != nil {
		out.SymmetricKey = SymmetricKey{PrimaryKey: str(k.PrimaryKey), SecondaryKey: str(k.SecondaryKey)}
	}
	if t := a.X509Thumbprint; t != nil {
		out.X509Thumbprint = X509Thumbprint{PrimaryThumbprint: str(t.PrimaryThumbprint), SecondaryThumbprint: str(t.SecondaryThumbprint)}
	}
	return out
}

// deviceBody is the writable part of a device in PUT /devices/{id}; every
// other member (read-only fields such as generationId or
// connectionStateUpdatedTime, in whatever format a client sends them) is
// ignored.
type deviceBody struct {
	DeviceID       *string   `json:"deviceId"`
	Status         *Status   `json:"status"`
	StatusReason   *string   `json:"statusReason"`
	Authentication *authBody `json:"authentication"`
	Capabilities   *struct {
		IotEdge *bool `json:"iotEdge"`
	} `json:"capabilities"`
	DeviceScope  *string  `json:"deviceScope"`
	ParentScopes []string `json:"parentScopes"`
	ETag         *string  `json:"etag"`
}

func (s *restServer) getDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.h.GetDevice(id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d, d.ETag)
}

func (s *restServer) listDevices(w http.ResponseWriter, r *http.Request) error {
	top := maxListDevices
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("top must be a non-negative integer")
		}
		if n > 0 && n < top {
			top = n
		}
	}
	ds := s.h.ListDevices()
	if len(ds) > top {
		ds = ds[:top]
	}
	return writeJSON(w, http.StatusOK, ds, "")
}

func (s *restServer) putDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var b deviceBody
	if err := decodeJSON(r, maxRESTBody, &b); err != nil {
		return err
	}
	if b.DeviceID != nil && *b.DeviceID != "" && *b.DeviceID != id {
		return badRequest("the body's deviceId %q does not match the path's %q", *b.DeviceID, id)
	}
	d := Device{DeviceID: id, StatusReason: str(b.StatusReason), DeviceScope: str(b.DeviceScope), ParentScopes: b.ParentScopes,
		Authentication: b.Authentication.toAuth()}
	if b.Status != nil {
		d.Status = *b.Status
	}
	if b.Capabilities != nil && b.Capabilities.IotEdge != nil {
		d.Capabilities.IotEdge = *b.Capabilities.IotEdge
	}
	var out Device
	if m, ok := ifMatch(r); ok {
		out, err = s.h.UpdateDevice(r.Context(), d, m)
	} else {
		out, err = s.h.CreateDevice(r.Context(), d)
	}
	if err != nil {
		if isExists(err) {
			return &restError{status: http.StatusConflict, code: "DeviceAlreadyExists", number: 409001,
				msg: "A device with ID '" + id + "' is already registered."}
		}
		return err
	}
	return writeJSON(w, http.StatusOK, out, out.ETag)
}

func isExists(err error) bool {
	return errors.Is(err, ErrDeviceAlreadyExists) || errors.Is(err, ErrModuleAlreadyExists)
}

func (s *restServer) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, _ := ifMatch(r)
	if err := s.h.DeleteDevice(r.Context(), id, m); err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

// moduleBody is the writable part of a module in PUT.
type moduleBody struct {
	ModuleID       *string   `json:"moduleId"`
	DeviceID       *string   `json:"deviceId"`
	ManagedBy      *string   `json:"managedBy"`
	Authentication *authBody `json:"authentication"`
	ETag           *string   `json:"etag"`
}

func (s *restServer) getModule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	mid, err := pathID(r, "mid")
	if err != nil {
		return err
	}
	m, err := s.h.GetModule(id, mid)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m, m.ETag)
}

func (s *restServer) listModules(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.h.GetDevice(id); err != nil {
		return err
	}
	ms := s.h.ListModules(id)
	if ms == nil {
		ms = []Module{}
	}
	return writeJSON(w, http.StatusOK, ms, "")
}

func (s *restServer) putModule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	mid, err := pathID(r, "mid")
	if err != nil {
		return err
	}
	var b moduleBody
	if err := decodeJSON(r, maxRESTBody, &b); err != nil {
		return err
	}
	if b.DeviceID != nil && *b.DeviceID != "" && *b.DeviceID != id {
		return badRequest("the body's deviceId %q does not match the path's %q", *b.DeviceID, id)
	}
	if b.ModuleID != nil && *b.ModuleID != "" && *b.ModuleID != mid {
		return badRequest("the body's moduleId %q does not match the path's %q", *b.ModuleID, mid)
	}
	m := Module{DeviceID: id, ModuleID: mid, ManagedBy: str(b.ManagedBy), Authentication: b.Authentication.toAuth()}
	var out Module
	if im, ok := ifMatch(r); ok {
		out, err = s.h.UpdateModule(r.Context(), m, im)
	} else {
		out, err = s.h.CreateModule(r.Context(), m)
	}
	if err != nil {
		if isExists(err) {
			return &restError{status: http.StatusConflict, code: "ModuleAlreadyExistsOnDevice", number: 409301,
				msg: "A module with ID '" + mid + "' is already registered on device '" + id + "'."}
		}
		return err
	}
	return writeJSON(w, http.StatusOK, out, out.ETag)
}

func (s *restServer) deleteModule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	mid, err := pathID(r, "mid")
	if err != nil {
		return err
	}
	m, _ := ifMatch(r)
	if err := s.h.DeleteModule(r.Context(), id, mid, m); err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

// statisticsReply is GET /statistics/devices.
type statisticsReply struct {
	TotalDeviceCount    int `json:"totalDeviceCount"`
	EnabledDeviceCount  int `json:"enabledDeviceCount"`
	DisabledDeviceCount int `json:"disabledDeviceCount"`
}

func (s *restServer) statistics(w http.ResponseWriter, r *http.Request) error {
	var st statisticsReply
	for _, d := range s.h.ListDevices() {
		st.TotalDeviceCount++
		if strings.EqualFold(string(d.Status), string(StatusDisabled)) {
			st.DisabledDeviceCount++
		} else {
			st.EnabledDeviceCount++
		}
	}
	return writeJSON(w, http.StatusOK, st, "")
}
