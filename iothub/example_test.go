package iothub_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubwire/hubwire/iothub"
)

func ExampleAppendTelemetryTopic() {
	props := iothub.Properties{MessageID: "42", ContentType: "application/json", ContentEncoding: "utf-8"}
	props.Add("alert", "high temp")
	buf := make([]byte, 0, 128) // reuse it: building the topic then allocates nothing
	buf = iothub.AppendTelemetryTopic(buf, "dev1", "", &props)
	fmt.Println(string(buf))
	// Output:
	// devices/dev1/messages/events/%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp
}

func ExampleParseTopic() {
	topics := []string{
		"devices/dev1/messages/devicebound/%24.mid=7&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&iothub-ack=full&color=dark%20red",
		"$iothub/twin/res/204/?$rid=3&$version=12",
		"$iothub/twin/PATCH/properties/desired/?$version=8",
		"$iothub/methods/POST/reboot/?$rid=9",
		"devices/dev1/messages/evts/",
	}
	for _, s := range topics {
		r, err := iothub.ParseTopic([]byte(s))
		switch {
		case errors.Is(err, iothub.ErrUnknownTopic):
			fmt.Println("unknown:", s)
		case err != nil:
			fmt.Println("error:", err)
		case r.Kind == iothub.RouteC2D:
			var p iothub.Properties
			_ = p.Parse(r.Bag)
			fmt.Printf("%v for %s: mid=%s ack=%s color=%q\n", r.Kind, r.DeviceID, p.MessageID, p.Ack, p.App[0].Value)
		case r.Kind == iothub.RouteTwinResponse:
			fmt.Printf("%v: status %d rid %s version %d\n", r.Kind, r.Status, r.RequestID, r.Version)
		case r.Kind == iothub.RouteTwinDesired:
			fmt.Printf("%v: version %d\n", r.Kind, r.Version)
		case r.Kind == iothub.RouteMethodRequest:
			fmt.Printf("%v: %s rid %s\n", r.Kind, r.MethodName, r.RequestID)
		}
	}
	// Output:
	// c2d for dev1: mid=7 ack=full color="dark red"
	// twin-response: status 204 rid 3 version 12
	// twin-desired: version 8
	// method-request: reboot rid 9
	// unknown: devices/dev1/messages/evts/
}

func ExampleParseFilter() {
	// The emulator checks each SUBSCRIBE filter of device "dev1".
	for _, f := range []string{
		"devices/dev1/messages/devicebound/#",
		"$iothub/twin/res/#",
		"devices/+/messages/devicebound/#", // Embedded C SDK
		"devices/dev2/messages/devicebound/#",
		"devices/dev1/messages/events/#",
	} {
		flt, err := iothub.ParseFilter([]byte(f))
		if err != nil || !flt.AllowedFor("dev1", "") {
			fmt.Println("refuse (close the connection):", f)
			continue
		}
		fmt.Printf("%v device=%q any=%v\n", flt.Kind, flt.DeviceID, flt.AnyDevice)
	}
	// Output:
	// c2d device="dev1" any=false
	// twin-responses device="" any=false
	// c2d device="" any=true
	// refuse (close the connection): devices/dev2/messages/devicebound/#
	// refuse (close the connection): devices/dev1/messages/events/#
}

func ExampleUsername() {
	u := iothub.Username{Host: "myhub.azure-devices.net", DeviceID: "dev1", ModelID: "dtmi:com:example:Thermostat;1"}
	fmt.Println(u.String())
	parsed, _ := iothub.ParseUsername([]byte("myhub.azure-devices.net/dev1/api-version=2016-11-14"))
	fmt.Println(parsed.DeviceID, parsed.APIVersion, parsed.Legacy, parsed.MatchesClientID([]byte("dev1")))
	// Output:
	// myhub.azure-devices.net/dev1/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1
	// dev1 2016-11-14 true true
}

// A device twin and a hub twin talking through topics, as the device client
// and the emulator will over MQTT.
func ExampleDeviceTwin() {
	dev := iothub.NewDeviceTwin(iothub.DeviceTwinConfig{})
	hub := iothub.NewHubTwin()

	// send delivers a device request to the hub and the hub's reply back.
	send := func(a iothub.Action) iothub.TwinEffects {
		req, _ := iothub.ParseTopic(a.Topic)
		reply, _ := hub.HandleRequest(&req, a.Payload)
		res, _ := iothub.ParseTopic(reply.Topic)
		fx, _ := dev.Handle(&res, reply.Payload)
		return fx
	}
	// push delivers a hub notification to the device.
	push := func(a iothub.Action) iothub.TwinEffects {
		r, _ := iothub.ParseTopic(a.Topic)
		fx, _ := dev.Handle(&r, a.Payload)
		return fx
	}
	show := func(fx iothub.TwinEffects) {
		for _, u := range fx.Updates {
			fmt.Printf("desired v%d full=%v resync=%v patch=%v\n", u.Version, u.Full, u.Resync, u.Patch)
		}
		for _, a := range fx.Publish {
			fmt.Printf("publish %s\n", a.Topic)
		}
	}

	hub.UpdateDesired([]byte(`{"fw":"1.0"}`)) // while the device is offline
	get, _ := dev.Get()                       // on connect, after subscribing
	show(send(get))

	n3, _, _ := hub.UpdateDesired([]byte(`{"fw":"1.1"}`))
	show(push(n3)) // the next version: applied

	hub.UpdateDesired([]byte(`{"mode":"eco"}`)) // v4 is lost
	n5, _, _ := hub.UpdateDesired([]byte(`{"fw":null}`))
	fx := push(n5) // v5 after v3: a gap, so the twin asks for a GET
	show(fx)
	show(send(fx.Publish[0]))

	patch, w, _ := dev.ReportProperties([]byte(`{"fw":"1.1"}`))
	send(patch)
	reply, err := w.Wait(context.Background())
	fmt.Println("reported version", reply.Version, err)
	// Output:
	// desired v2 full=true resync=false patch=map[fw:1.0]
	// desired v3 full=false resync=false patch=map[fw:1.1]
	// publish $iothub/twin/GET/?$rid=2
	// desired v5 full=false resync=true patch=map[fw:<nil> mode:eco]
	// reported version 2 <nil>
}

func ExampleMethodMux() {
	var mux iothub.MethodMux
	mux.Handle("reboot", func(ctx context.Context, req iothub.MethodRequest) (int, []byte, error) {
		return 200, []byte(`{"rebooting":true}`), nil
	})
	for _, topic := range []string{"$iothub/methods/POST/reboot/?$rid=1", "$iothub/methods/POST/selfDestruct/?$rid=2"} {
		r, _ := iothub.ParseTopic([]byte(topic))
		req, _ := iothub.ParseMethodRequest(&r, nil)
		reply := mux.Dispatch(context.Background(), req)
		fmt.Printf("%s %s\n", reply.Topic, reply.Payload)
	}
	// Output:
	// $iothub/methods/res/200/?$rid=1 {"rebooting":true}
	// $iothub/methods/res/501/?$rid=2 {"message":"method not implemented: selfDestruct"}
}

func ExampleMethodTable() {
	clock := iothub.NewManualClock(time.Unix(0, 0))
	table := iothub.NewMethodTable(clock)

	// The service invokes a method on a connected device.
	req, w, _ := table.Invoke(iothub.MethodCall{DeviceID: "dev1", Name: "getLog", ResponseTimeout: 10 * time.Second}, true)
	fmt.Printf("publish to dev1: %s\n", req.Topic)

	// The device answers.
	r, _ := iothub.ParseTopic(req.Topic)
	answer := iothub.MethodResponse(string(r.RequestID), 200, []byte(`["boot ok"]`))
	ar, _ := iothub.ParseTopic(answer.Topic)
	_ = table.HandleResponse("dev1", "", &ar, answer.Payload)
	res, _ := w.Wait(context.Background())
	fmt.Println(string(res.AppendJSON(nil)))

	// A call nobody answers times out: 504.
	_, w2, _ := table.Invoke(iothub.MethodCall{DeviceID: "dev1", Name: "slow"}, true)
	clock.Advance(iothub.DefaultMethodTimeout)
	_, err := w2.Wait(context.Background())
	fmt.Println(iothub.StatusOf(err), errors.Is(err, iothub.ErrTimeout))

	// An offline device: 404 at once.
	_, _, err = table.Invoke(iothub.MethodCall{DeviceID: "dev2", Name: "x"}, false)
	fmt.Println(iothub.StatusOf(err), errors.Is(err, iothub.ErrDeviceNotOnline))
	// Output:
	// publish to dev1: $iothub/methods/POST/getLog/?$rid=m1
	// {"status":200,"payload":["boot ok"]}
	// 504 true
	// 404 true
}

func ExampleCorrelator() {
	reqs := iothub.NewCorrelator[string]("echo", "e", nil)
	w := reqs.Start(5*time.Second, nil)
	// …publish a request carrying w.RequestID(); the reader goroutine later
	// gets the reply and resolves it:
	reqs.Resolve([]byte(w.RequestID()), "pong", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := w.Wait(ctx)
	fmt.Println(w.RequestID(), v, err)
	// Output:
	// e1 pong <nil>
}
