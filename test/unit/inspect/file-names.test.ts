/**
 * File names as Windows resolves them: the extension file blocking judges is the one Windows
 * would open the file by — trailing dots and spaces stripped, NTFS stream suffixes dropped,
 * invisible characters removed, the last path component only — and the flags follow.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extensionOf, fileFlags, typeForWindows, windowsName } from '../../../src/inspect/file-flags.ts';

describe('the extension Windows would use', () => {
  const CASES: ReadonlyArray<readonly [string, string | null]> = [
    ['report.hta', 'hta'],
    ['report.hta.', 'hta'],
    ['report.hta. . .', 'hta'],
    ['report.hta   ', 'hta'],
    ['report.hta::$DATA', 'hta'],
    ['report.js:payload:$DATA', 'js'],
    ['REPORT.EXE', 'exe'],
    ['invoice\u200b.exe', 'exe'],
    ['invoice.ex\u200de', 'exe'],
    ['C:\\Users\\x\\Desktop\\run.bat', 'bat'],
    ['dir/sub/run.cmd', 'cmd'],
    ['Search.searchConnector-ms', 'searchconnector-ms'],
    ['no-extension', null],
    ['trailing.', null],
  ];
  for (const [name, ext] of CASES) it(JSON.stringify(name), () => assert.equal(extensionOf(name), ext));

  it('the name itself, for the log and double extensions', () => {
    assert.equal(windowsName('invoice.pdf.exe . '), 'invoice.pdf.exe');
    assert.deepEqual(fileFlags('invoice.pdf.exe.', null, 'exe'), ['double-extension']);
    assert.deepEqual(fileFlags('invoice.pdf .scr::$DATA', null, 'exe'), ['double-extension']);
  });

  it('a right-to-left override still flags, and its name resolves without it', () => {
    assert.deepEqual(fileFlags('invoice\u202efdp.exe', null, 'exe'), ['rtlo']);
    assert.equal(extensionOf('invoice\u202efdp.exe'), 'exe');
  });

  it('the detected type is judged against the extension Windows uses', () => {
    assert.deepEqual(fileFlags('photo.jpg.', null, 'exe'), ['type-mismatch']);
  });
});

describe('the type Windows opens a text by', () => {
  const CASES: ReadonlyArray<readonly [string, ReadonlyArray<string | null>, string]> = [
    // [detected type, names, type for Windows]
    ['text', ['invoice.js'], 'js'],
    ['text', ['invoice.JSE.'], 'js'],
    ['text', ['run.cmd::$DATA'], 'bat'],
    ['html', ['app.hta'], 'hta'],
    ['text', ['page.html'], 'html'],
    ['xml', ['Documents.searchConnector-ms'], 'library-ms'],
    ['text', ['notes.txt'], 'text'],
    ['text', [null, 'a.txt', 'b.vbs'], 'vbs'],
    ['text', ['a.html', 'b.ps1'], 'ps1'],
    ['exe', ['invoice.js'], 'exe'],
    ['binary', ['invoice.js'], 'binary'],
    ['pdf', ['doc.html'], 'pdf'],
  ];
  for (const [detected, names, expected] of CASES) {
    it(`${detected} named ${names.join(', ')}: ${expected}`, () => assert.equal(typeForWindows(detected, names), expected));
  }
});
