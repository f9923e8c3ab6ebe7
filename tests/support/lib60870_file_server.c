/*
 * A lib60870-C (IEC 104) outstation with lib60870's file service, the peer of
 * tests/driver/test_driver_files_lib60870.py. Built by tests/support/lib60870.py against the
 * lib60870-C sources shipped in c104's sdist.
 *
 * usage: lib60870_file_server PORT CA IOA NOF SERVED_FILE RECEIVED_DIR
 *
 * Serves the octets of SERVED_FILE as file NOF at (CA, IOA), in sections of SECTION_SIZE
 * octets. Accepts files written to it (any address) except NOF 99, and stores each one,
 * when lib60870 reports it finished, as RECEIVED_DIR/CA-IOA-NOF. Prints "listening", then
 * one line per event ("sent ok", "received CA IOA NOF LENGTH"), and runs until its stdin
 * closes.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs101_file_service.h"
#include "cs104_slave.h"

#define SECTION_SIZE 1000
#define REFUSED_NOF 99

static uint8_t* served;
static int servedSize;
static struct sCS101_IFileProvider provider;
static struct sCS101_FilesAvailable available;

static const char* receivedDir;
static struct sCS101_IFileReceiver receiver;
static int inCa, inIoa, inNof, inLength, inReceived;
static uint8_t* inData;

static uint64_t
fileDate(CS101_IFileProvider self)
{
    return 1700000000000ULL;
}

static int
fileSize(CS101_IFileProvider self)
{
    return servedSize;
}

static int
sectionSize(CS101_IFileProvider self, int section)
{
    int left = servedSize - section * SECTION_SIZE;

    if (left <= 0)
        return 0; /* no such section: lib60870 then sends the last section (file checksum) */

    return left < SECTION_SIZE ? left : SECTION_SIZE;
}

static bool
segmentData(CS101_IFileProvider self, int section, int offset, int size, uint8_t* data)
{
    memcpy(data, served + section * SECTION_SIZE + offset, size);
    return true;
}

static void
transferComplete(CS101_IFileProvider self, bool success)
{
    printf("sent %s\n", success ? "ok" : "failed");
    fflush(stdout);
}

static CS101_IFileProvider
getFile(void* parameter, int ca, int ioa, uint16_t nof, int* errCode)
{
    if (ca == provider.ca && ioa == provider.ioa && nof == provider.nof)
        return &provider;

    *errCode = 0; /* negative file ready */
    return NULL;
}

static CS101_IFileProvider
getNextFile(void* parameter, CS101_IFileProvider continueAfter)
{
    return continueAfter == NULL ? &provider : NULL;
}

static void
segmentReceived(CS101_IFileReceiver self, uint8_t section, int offset, int size, uint8_t* data)
{
    /* sections arrive in order, each segment after the previous one */
    if (inReceived + size <= inLength) {
        memcpy(inData + inReceived, data, size);
        inReceived += size;
    }
}

static void
finished(CS101_IFileReceiver self, CS101_FileErrorCode result)
{
    char path[4096];

    if (result == CS101_FILE_ERROR_SUCCESS) {
        snprintf(path, sizeof(path), "%s/%d-%d-%d", receivedDir, inCa, inIoa, inNof);
        FILE* out = fopen(path, "wb");

        if (out) {
            fwrite(inData, 1, inReceived, out);
            fclose(out);
        }
        printf("received %d %d %d %d\n", inCa, inIoa, inNof, inReceived);
    }
    else {
        printf("receive failed %d\n", (int) result);
    }
    fflush(stdout);
    free(inData);
    inData = NULL;
}

static CS101_IFileReceiver
fileReady(void* parameter, int ca, int ioa, uint16_t nof, int lengthOfFile, int* errCode)
{
    if (nof == REFUSED_NOF) {
        *errCode = 0; /* negative file ready */
        return NULL;
    }
    free(inData);
    inData = (uint8_t*) malloc(lengthOfFile > 0 ? lengthOfFile : 1);
    inCa = ca;
    inIoa = ioa;
    inNof = nof;
    inLength = lengthOfFile;
    inReceived = 0;
    return &receiver;
}

static uint8_t*
readAll(const char* path, int* size)
{
    FILE* in = fopen(path, "rb");

    if (in == NULL)
        return NULL;
    fseek(in, 0, SEEK_END);
    *size = (int) ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t* data = (uint8_t*) malloc(*size > 0 ? *size : 1);
    if (fread(data, 1, *size, in) != (size_t) *size) {
        fclose(in);
        return NULL;
    }
    fclose(in);
    return data;
}

int
main(int argc, char** argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT CA IOA NOF SERVED_FILE RECEIVED_DIR\n", argv[0]);
        return 2;
    }
    served = readAll(argv[5], &servedSize);
    if (served == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[5]);
        return 2;
    }
    receivedDir = argv[6];

    provider.ca = atoi(argv[2]);
    provider.ioa = atoi(argv[3]);
    provider.nof = (uint8_t) atoi(argv[4]);
    provider.getFileDate = fileDate;
    provider.getFileSize = fileSize;
    provider.getSectionSize = sectionSize;
    provider.getSegmentData = segmentData;
    provider.transferComplete = transferComplete;
    available.getFile = getFile;
    available.getNextFile = getNextFile;
    receiver.segmentReceived = segmentReceived;
    receiver.finished = finished;

    CS104_Slave slave = CS104_Slave_create(100, 100);
    CS104_Slave_setLocalAddress(slave, "127.0.0.1");
    CS104_Slave_setLocalPort(slave, atoi(argv[1]));

    CS101_FileServer files = CS101_FileServer_create(CS104_Slave_getAppLayerParameters(slave));
    CS101_FileServer_setFilesAvailableIfc(files, &available);
    CS101_FileServer_setFileReadyHandler(files, fileReady, NULL);
    CS104_Slave_addPlugin(slave, CS101_FileServer_getSlavePlugin(files));

    CS104_Slave_start(slave);
    if (!CS104_Slave_isRunning(slave)) {
        fprintf(stderr, "cannot listen on port %s\n", argv[1]);
        return 1;
    }
    printf("listening\n");
    fflush(stdout);

    while (fgetc(stdin) != EOF)
        ;

    CS104_Slave_stop(slave);
    CS104_Slave_destroy(slave);
    CS101_FileServer_destroy(files);
    free(served);
    return 0;
}
