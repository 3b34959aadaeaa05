#ifndef ROADWATCH_CMOSQUITTO_SHIM_H
#define ROADWATCH_CMOSQUITTO_SHIM_H

// libmosquitto (Debian: libmosquitto-dev). No logic here: the Swift wrapper is Sources/Notify/MQTTClient.swift.
#include <mosquitto.h>

#endif
