// gst_ios_init for FieldCast, after the gst_ios_init.m of GStreamer's iOS project template: the
// app's directories for GStreamer's files, gst_init, then the static plugins of the core's
// pipelines (the same set as the Android build's, with applemedia's VideoToolbox encoder in place
// of androidmedia).
#import <Foundation/Foundation.h>
#include <TargetConditionals.h>
#include <stdlib.h>
#include <gst/gst.h>
#include "FieldCastGStreamer.h"

#if TARGET_OS_IOS
#define FIELDCAST_PLUGINS(X) \
    X(coreelements) X(app) X(videoconvertscale) X(videorate) X(videotestsrc) X(audioconvert) \
    X(audioresample) X(audiotestsrc) X(playback) X(typefindfunctions) X(isomp4) X(multifile) \
    X(mpegtsmux) X(mpegtsdemux) X(srt) X(videoparsersbad) X(audioparsers) \
    X(applemedia) X(openh264) X(voaacenc)

#define FIELDCAST_DECLARE(name) GST_PLUGIN_STATIC_DECLARE(name);
#define FIELDCAST_REGISTER(name) GST_PLUGIN_STATIC_REGISTER(name);

FIELDCAST_PLUGINS(FIELDCAST_DECLARE)

static void fieldcast_setenv(const char *name, NSString *value) {
    setenv(name, value.fileSystemRepresentation, 1);
}
#endif

void gst_ios_init(void) {
#if TARGET_OS_IOS
    NSFileManager *files = NSFileManager.defaultManager;
    NSString *tmp = NSTemporaryDirectory();
    NSString *cache = NSSearchPathForDirectoriesInDomains(NSCachesDirectory, NSUserDomainMask, YES).firstObject;
    NSString *support = NSSearchPathForDirectoriesInDomains(NSApplicationSupportDirectory, NSUserDomainMask, YES).firstObject;
    [files createDirectoryAtPath:cache withIntermediateDirectories:YES attributes:nil error:NULL];
    [files createDirectoryAtPath:support withIntermediateDirectories:YES attributes:nil error:NULL];

    fieldcast_setenv("TMP", tmp);
    fieldcast_setenv("TEMP", tmp);
    fieldcast_setenv("TMPDIR", tmp);
    fieldcast_setenv("XDG_RUNTIME_DIR", tmp);
    fieldcast_setenv("XDG_CACHE_HOME", cache);
    fieldcast_setenv("XDG_CONFIG_HOME", support);
    fieldcast_setenv("XDG_DATA_HOME", support);
    fieldcast_setenv("HOME", support);
    fieldcast_setenv("GST_REGISTRY", [cache stringByAppendingPathComponent:@"gstreamer-registry.bin"]);
    setenv("GST_REGISTRY_FORK", "no", 1);

    gst_init(NULL, NULL);
    FIELDCAST_PLUGINS(FIELDCAST_REGISTER)
#else
    gst_init(NULL, NULL);
#endif
}
