#ifndef FIELDCAST_GSTREAMER_H
#define FIELDCAST_GSTREAMER_H

/// Prepares GStreamer for FieldCast: on iOS, points GStreamer's caches, registry and temporary
/// files into the app's sandbox, initialises GStreamer and registers the statically linked plugins
/// the core uses; on macOS, initialises the installed GStreamer. Call once, before the core is
/// used (FieldCast.initialize() does). Not thread-safe on its own.
void gst_ios_init(void);

#endif
